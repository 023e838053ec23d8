"""The response cache: exact-match answers for repeated requests (LiteLLM's
``litellm_settings.cache`` / ``cache_params``).

- ``settings``: the configuration, read once at startup;
- ``keys``: the canonical request and its key (pure);
- ``controls``: a request's ``cache: {...}`` controls (pure);
- ``entry``: how an answer is stored (JSON body or a stream's events);
- ``memory`` / ``redis_store``: the two stores behind :class:`CacheStore`;
- ``recording``: a stream passed on to the client and kept when it ends cleanly;
- ``service``: :class:`ResponseCache`, what the request path talks to, and its counters.
"""
