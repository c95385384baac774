"""Every Redis key Kefu uses, in one place.

All keys share the ``kefu:`` prefix so one Redis can be shared with other software and a
test can wipe exactly Kefu's data.

Keys that one Lua script or ``MULTI`` uses together carry the same Redis Cluster hash tag (the
part in ``{...}``), so they share a hash slot: a conversation's keys are tagged with its id
(``kefu:{web:abc}:conv``), which spreads conversations over a cluster; the structures a script
reads with them across conversations have a tag of their own (``{desk}``, ``{admin}``, ``{kb}``,
``{login-attempts}``, ``{web-admission}``, ``{cards}``).  A key used only alone has no tag.
``tests/bot/test_keys.py`` holds every script and transaction to one slot.
"""

PREFIX = "kefu:"


def _conv(conversation_id: str) -> str:
    """The hash-tagged prefix of one conversation's keys (its slot: the id up to any ``}``)."""
    return f"{PREFIX}{{{conversation_id}}}:"


DESK = f"{PREFIX}{{desk}}:"  # tickets, the queue and agents' loads: the ticket scripts use them together


def conversation(conversation_id: str) -> str:
    """JSON document of a conversation's state (without its transcript)."""
    return f"{_conv(conversation_id)}conv"


def transcript(conversation_id: str) -> str:
    """List of JSON transcript lines, oldest first, trimmed to ``store.transcript_max``."""
    return f"{_conv(conversation_id)}transcript"


def transcript_seq(conversation_id: str) -> str:
    """Counter of the conversation's transcript lines ever saved: the last line's ``seq``."""
    return f"{_conv(conversation_id)}transcript-seq"


def web_visitor_secret() -> str:
    """The HMAC secret signing web-chat visitor tokens when ``channels.web.secret`` is empty,
    made once by the first worker so every worker (and a restart) accepts the same tokens."""
    return f"{PREFIX}channel:web:visitor-secret"


def web_attachment(attachment_id: str) -> str:
    """Hash of a picture or file a web visitor sent {owner, type, name, size, data (base64)},
    kept for the agent as long as the transcript."""
    return f"{PREFIX}channel:web:attachment:{attachment_id}"


def web_visitor_name(visitor_id: str) -> str:
    """The customer name the website vouched for (a signed ``data-customer``), for agents."""
    return f"{PREFIX}channel:web:visitor-name:{visitor_id}"


def web_typing(conversation_id: str) -> str:
    """Short-lived marker "the agent is typing" (expires by itself), shown in the web chat."""
    return f"{_conv(conversation_id)}typing"


def seen(namespace: str, item_id: str) -> str:
    """Dedupe marker: a platform update or event id already taken by some worker."""
    return f"{PREFIX}seen:{namespace}:{item_id}"


def message_claim(conversation_id: str, namespace: str, message_id: str) -> str:
    """A message's claim, then "done" marker: the turn's dedupe, in its conversation's slot (a
    platform message belongs to one conversation)."""
    return f"{_conv(conversation_id)}seen:{namespace}:{message_id}"


def lock(conversation_id: str) -> str:
    """Per-conversation lock so one conversation's turns never run concurrently."""
    return f"{_conv(conversation_id)}lock"


def rate(conversation_id: str, window: int) -> str:
    """Counter of a customer's messages in one rate-limit window (expires with it)."""
    return f"{PREFIX}rate:{conversation_id}:{window}"


def conversation_pattern() -> str:
    """SCAN pattern matching every conversation document (retention purge)."""
    return f"{PREFIX}{{*}}:conv"


def channel_state(channel: str, name: str) -> str:
    """Small per-channel values: cursors, access tokens, token locks."""
    return f"{PREFIX}channel:{channel}:{name}"


def customer(channel: str, user_id: str) -> str:
    """Per-customer data kept across conversations (profile, delivery windows)."""
    return f"{PREFIX}customer:{channel}:{user_id}"


def outbox(conversation_id: str) -> str:
    """List of replies that could not be delivered yet (e.g. WeChat 48-hour window closed)."""
    return f"{_conv(conversation_id)}outbox"


def kb_entries() -> str:
    """Hash: entry id → entry JSON; the live knowledge base every worker answers from."""
    return f"{PREFIX}{{kb}}:entries"


def kb_version() -> str:
    """Counter bumped on every knowledge change, so workers know to reload."""
    return f"{PREFIX}{{kb}}:version"


def agent_ticket(ticket_id: str) -> str:
    """Hash: one handoff ticket (status, owner, priority, context JSON, survey, rating)."""
    return f"{DESK}ticket:{ticket_id}"


def agent_ticket_pattern() -> str:
    """SCAN pattern matching every ticket hash (and, filtered out by the caller, notes lists)."""
    return f"{DESK}ticket:*"


def agent_ticket_notes(ticket_id: str) -> str:
    """List of JSON internal notes on a ticket; never shown to the customer."""
    return f"{DESK}ticket:{ticket_id}:notes"


def agent_open_ticket(conversation_id: str) -> str:
    """The id of the conversation's open ticket, so a handoff never opens two."""
    return f"{DESK}open:{conversation_id}"


def agent_queue() -> str:
    """Sorted set of waiting ticket ids, scored by priority then waiting time."""
    return f"{DESK}queue"


def agent_active() -> str:
    """Set of claimed (not yet closed) ticket ids."""
    return f"{DESK}active"


def agent_owned(agent: str) -> str:
    """Set of the open ticket ids an agent owns: their load, checked against their chat limit
    (with ``agent=""`` the prefix the Lua scripts append an owner's name to)."""
    return f"{DESK}owned:{agent}"


def agent_last_assigned() -> str:
    """Hash: agent name → when the desk last assigned them a ticket (round robin, tie-breaks)."""
    return f"{DESK}last-assigned"


def agent_status() -> str:
    """Hash: agent name → JSON {status: online|busy|away|offline, since} chosen in the console."""
    return f"{PREFIX}agents:status"


def agent_closed() -> str:
    """Sorted set of closed ticket ids scored by closing time: the resolved list and its search."""
    return f"{DESK}closed"


def agent_blocked() -> str:
    """Hash: "channel:user_id" → JSON {name, reason, by, at}: customers who may not reach an agent."""
    return f"{PREFIX}agents:blocked"


def agent_customer_card(customer_id: str) -> str:
    """JSON customer profile the agents keep across channels {name, identities, attributes}."""
    return f"{PREFIX}{{cards}}:card:{customer_id}"


def agent_identities() -> str:
    """Hash: "channel:user_id" → customer id, for identities linked into one customer's profile."""
    return f"{PREFIX}{{cards}}:identities"


def agent_customer_tickets(channel: str, user_id: str) -> str:
    """List of a customer's ticket ids, newest last: the agent sees earlier tickets."""
    return f"{DESK}customer:{channel}:{user_id}"


def agent_users() -> str:
    """Hash: agent name → JSON {password_hash, role}; added with ``kefu agent add``."""
    return f"{PREFIX}agents:users"


def agent_tokens() -> str:
    """Hash: sha256 of an API token → agent name."""
    return f"{PREFIX}agents:tokens"


def agent_session(token: str) -> str:
    """Console login session: JSON {name, role, csrf}, expiring."""
    return f"{PREFIX}agents:session:{token}"


def agent_presence() -> str:
    """Sorted set: agent name → last time their console was connected (wait estimates)."""
    return f"{PREFIX}agents:presence"


def agent_events() -> str:
    """Pub/sub channel fanning console events out to every worker."""
    return f"{PREFIX}agents:events"


def agent_followups() -> str:
    """Sorted set of follow-up reminders (JSON) scored by due time."""
    return f"{PREFIX}agents:followups"


def agent_survey(conversation_id: str) -> str:
    """The ticket whose satisfaction survey the conversation is answering, with its stage."""
    return f"{PREFIX}agents:survey:{conversation_id}"


def agent_ratings() -> str:
    """Stream of satisfaction ratings {ticket, agent, rating, comment} for reporting."""
    return f"{PREFIX}agents:ratings"


def agent_sla_lock() -> str:
    """Short lock so only one worker runs an SLA sweep at a time."""
    return f"{PREFIX}agents:sla-lock"


def access_token(channel: str) -> str:
    """A platform access token (JSON {token, expires}) shared by every worker (WeChat, WeCom)."""
    return channel_state(channel, "access-token")


def access_token_lock(channel: str) -> str:
    """Lock held while one worker fetches a new access token, so refreshes never race."""
    return channel_state(channel, "access-token-lock")


def delivery_lock(channel: str, user_id: str) -> str:
    """Lock serialising outbound sends to one customer (window quota, outbox order)."""
    return channel_state(channel, f"delivery-lock:{user_id}")


def turn_reply(channel: str, message_id: str) -> str:
    """How the first delivery of a message's answer went (passive text or "custom"), kept
    briefly so a platform retry of the same message repeats it instead of answering twice."""
    return channel_state(channel, f"turn-reply:{message_id}")


def sync_cursor(channel: str, account: str) -> str:
    """Cursor of a pull-based message feed (WeCom kf/sync_msg), saved after messages are handled."""
    return channel_state(channel, f"cursor:{account}")


def sync_lock(channel: str, account: str) -> str:
    """Lock so one worker at a time pulls an account's message feed."""
    return channel_state(channel, f"sync-lock:{account}")


def agent_login_attempts(scope: str, part: str) -> str:
    """Counter of console login attempts in the last 15 minutes (expiring): ``scope`` is "pair"
    (``part`` = name hash:address), "address" or "name" (a hash of the name, never the name)."""
    return f"{PREFIX}{{login-attempts}}:{scope}:{part}"


def sync_failures(channel: str, message_id: str) -> str:
    """How often handling a pulled message failed, so one poison message cannot stall the feed."""
    return channel_state(channel, f"sync-failures:{message_id}")


def kb_audit() -> str:
    """List of JSON audit records of knowledge changes {seq, version, at, who, action, entry_id,
    before, after}, oldest first: the history behind every rollback."""
    return f"{PREFIX}{{kb}}:audit"


def kb_changes() -> str:
    """Pub/sub channel announcing a new knowledge version {version, changed}, so every worker
    reloads within moments instead of waiting for its next version poll."""
    return f"{PREFIX}kb:changes"


def kb_served() -> str:
    """Hash: worker id → JSON {version, at}: the knowledge version each running worker answers
    from, refreshed every few seconds, so the admin console says "saved" only once all do."""
    return f"{PREFIX}kb:served"


def kb_write_lock() -> str:
    """Short lock serialising knowledge writes (edit, import, rollback) across workers."""
    return f"{PREFIX}kb:write-lock"


def admin_unanswered() -> str:
    """List of JSON questions the bot did not answer confidently (low confidence, clarified,
    handed off, thumbs-down), newest last, trimmed: the raw material for new knowledge."""
    return f"{PREFIX}{{admin}}:unanswered"


def admin_questions() -> str:
    """List of recent customer questions (JSON {text, language}), newest last, trimmed: replayed
    against a proposed knowledge change to show which answers it would change."""
    return f"{PREFIX}{{admin}}:questions"


def admin_metrics(day: str) -> str:
    """Hash of one day's counters (conversations, turns, answered, handoff:<reason>, entry:<id>,
    unanswered), day as YYYY-MM-DD in UTC."""
    return f"{PREFIX}{{admin}}:metrics:{day}"


def new_web_sessions(scope: str, window: int) -> str:
    """Counter of new web chat sessions in one minute, per client address (``scope``) or "all"."""
    return f"{PREFIX}{{web-admission}}:new-sessions:{scope}:{window}"


def web_session_admitted(conversation_id: str) -> str:
    """Mark of a web session already counted as a new chat (when its visitor token was issued),
    so its first message is not counted again."""
    return f"{PREFIX}{{web-admission}}:admitted:{conversation_id}"


def data_version() -> str:
    """The layout version of everything under the prefix (bot/migrations.py); absent before the
    first versioned release."""
    return f"{PREFIX}data-version"


def data_migration_lock() -> str:
    """Held while one process runs ``kefu migrate`` (or the automatic steps at start)."""
    return f"{PREFIX}data-migration-lock"
