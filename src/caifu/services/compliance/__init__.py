"""Compliance: data-subject requests (export, erasure, retirement), the audit log, the chat-compliance review."""
