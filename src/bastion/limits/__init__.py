"""Rate limits: rpm, tpm and parallel requests, counted in-process or on Redis.

counters.py   what is counted (Counter) and the 60 s fixed windows
plan.py       which counters a request touches (key, user, team, member,
              end user, model per key, deployment, global): pure
estimate.py   the tokens a call reserves before it is made
backend.py    the port: CounterBackend, Decision
memory.py     in-process backend (one worker)
redis_backend.py  Redis backend: one Lua script, one round trip per admission
limiter.py    RateLimiter: picks the backend, falls back when Redis is away,
              batches settlements
ticket.py     LimitTicket: one request's admission (a refusal becomes a 429,
              shared budgets and the cache entry read alongside) and settlement
"""
