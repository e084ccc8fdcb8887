"""The SCRM routes: the WeCom callback URL, campaigns and tracking links, the advisor sidebar."""
