"""The web interface: server-rendered pages over the API's data and role rules, under /ui/."""
