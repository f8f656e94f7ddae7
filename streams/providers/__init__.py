"""Channel adapters: one sender per provider behind `ChannelSender`, composed per channel with
bounded concurrency, a circuit breaker per provider and failover (see `channels`)."""
