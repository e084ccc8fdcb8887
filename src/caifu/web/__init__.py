"""Server-rendered pages and reports: Jinja templates and inline SVG charts, no build step."""
