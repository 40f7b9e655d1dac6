"""The wire contract shared by the edge agent and the collector: topics, messages, the clock."""
