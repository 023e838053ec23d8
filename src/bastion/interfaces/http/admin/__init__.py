"""The management API (LiteLLM's /key, /team, /user, /customer, /budget, /model, /spend paths).

Control plane: correct, validated and audited rather than fast, so it uses Starlette.
Each ``routes_*.py`` module contributes a ``ROUTES`` list; ``app.build_admin_app``
collects them.
"""
