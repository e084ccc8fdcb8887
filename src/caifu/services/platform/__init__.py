"""Platform: workspaces and tenants, users and API keys, sessions, the access scope, the job queue, housekeeping."""
