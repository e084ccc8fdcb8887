"""The demo: the demo broker's own workspace and the SCRM story played against a fake WeCom."""
