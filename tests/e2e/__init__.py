"""End-to-end tests: the real ``bastion serve`` process against real mock upstreams."""
