"""Logic behind the management API: one module per area, called by the thin
``interfaces/http/admin/routes_*.py`` handlers inside one database transaction."""
