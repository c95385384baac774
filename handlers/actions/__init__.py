"""Business actions: rasa-sdk ``Action`` classes named by knowledge entries (``action: <name>``).

They are run in-process (a module of Action classes) or by a remote rasa-sdk action server,
always with the JSON a Rasa server would send, so one action module serves both Kefu and a
Rasa assistant.  rasa-sdk is imported only when in-process actions are configured.

``call`` is the wire format, ``runner`` runs an action, ``act`` is the turn's act step that runs it.
"""
