"""SCRM on WeCom: the app, callbacks in and applied, identity links, preference groups, campaigns and funnels, the sidebar."""
