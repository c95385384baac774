"""The human desk: handoff tickets, the Redis queue, the agent console and its REST API.

The engine talks to :class:`bot.agents.desk.HumanDesk` through the :class:`bot.desk.AgentDesk`
protocol; agents talk to it through the console at ``/agent`` and ``/api/agent/...``.  All state
lives in Redis, so any worker serves any agent and a killed worker loses nothing.
"""
