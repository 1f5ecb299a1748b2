"""The web edge: server-rendered pages (Jinja2 templates, one stylesheet, a little progressive JavaScript) for
people: log in, browse repositories and tags, delete tags, manage accounts, teams and grants, read the audit
log, trust the registry's CA and choose the storage backend. Every page does what the admin API does, through
the same services; docs/ui.md says what each page does."""
