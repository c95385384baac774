"""Everything the bot says in its own words, in Chinese and English.

Wording follows the service rules in docs/service-rules.md: apologise and acknowledge before
anything else on a complaint, never blame the customer, never send them elsewhere
(首问负责制), and say when a human will reply.
"""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "greeting": {
        "zh": "您好！我是智能客服小客，退换货、物流、支付、会员等问题都可以问我；需要人工时说“转人工”即可。",
        "en": "Hello! I'm Kefu, the virtual assistant. Ask me about returns, delivery, payment or membership; "
              "say \"agent\" any time to reach a person.",
    },
    "thanks": {
        "zh": "不客气，很高兴能帮到您！还有其他问题随时问我。",
        "en": "You're welcome, glad I could help! Ask me anything else any time.",
    },
    "goodbye": {
        "zh": "感谢您的咨询，祝您生活愉快，再见！",
        "en": "Thanks for getting in touch, have a great day. Goodbye!",
    },
    "bot_identity": {
        "zh": "我是智能客服机器人，常见问题可以马上回答；需要真人帮忙时说“转人工”，我会把对话完整转给人工客服。",
        "en": "I'm a virtual assistant. I can answer common questions right away; say \"agent\" and I'll hand "
              "this conversation, with everything said so far, to a person.",
    },
    "attachment": {
        "zh": "已收到您发送的内容，我会把它保留在对话记录里，人工客服也能看到。"
              "请用文字简单描述一下您的问题，我来帮您处理。",
        "en": "Got it, I've kept what you sent with this conversation so an agent can see it too. "
              "Could you describe your question in a few words?",
    },
    "related_intro": {
        "zh": "相关问题：",
        "en": "Related questions:",
    },
    "help": {
        "zh": "我是智能客服，我可以马上回答常见问题，直接用一句话描述您的问题就行，比如：",
        "en": "I'm the virtual assistant: I can answer common questions right away. Just describe yours in "
              "a sentence, for example:",
    },
    "off_topic": {
        "zh": "抱歉，这个问题不在我能帮忙的范围内。我可以回答我们服务相关的常见问题，比如：",
        "en": "Sorry, that's not something I can help with here. I can answer common questions about our "
              "service, for example:",
    },
    "clarify_intro": {
        "zh": "您是想问以下哪个问题？回复序号或点击选项即可：",
        "en": "Which of these did you mean? Reply with a number or tap an option:",
    },
    "handoff_complaint": {
        "zh": "非常抱歉给您带来了不好的体验，您的心情我完全理解。我已将您的问题和完整的对话记录转给人工客服，"
              "预计{wait}分钟内会有专人回复并跟进处理，期间您可以继续补充情况。",
        "en": "I'm truly sorry about this experience, and I understand how frustrating it is. I've passed your "
              "case and our whole conversation to a human agent, who will reply within about {wait} minutes "
              "and follow it through. Feel free to add any details meanwhile.",
    },
    "handoff_human_request": {
        "zh": "好的，正在为您转接人工客服，预计{wait}分钟内回复。对话记录会一并转过去，您不用重复描述。",
        "en": "Sure, I'm connecting you with a human agent, who will reply within about {wait} minutes. "
              "They'll see this whole conversation, so you won't need to repeat yourself.",
    },
    "handoff_repeated_failure": {
        "zh": "抱歉，我没能准确理解您的问题，给您添麻烦了。我已请人工客服接手，预计{wait}分钟内回复，"
              "对话记录会一并转过去，您不用重复描述。",
        "en": "Sorry I couldn't get that right, and for the trouble. I've asked a human agent to take over; "
              "they'll reply within about {wait} minutes and will see everything you've told me.",
    },
    "handoff_low_confidence": {
        "zh": "这个问题我需要请人工客服为您确认，已为您转接，预计{wait}分钟内回复。"
              "对话记录会一并转过去，您不用重复描述。",
        "en": "I'd like a human colleague to answer this one properly, so I've passed it on; they'll reply "
              "within about {wait} minutes and will see this whole conversation.",
    },
    "waiting_note": {
        "zh": "已收到，人工客服会看到您补充的内容，请稍候。如果不需要人工了，回复“不用了”即可。",
        "en": "Noted, the agent will see this too; please hold on. If you no longer need an agent, just say "
              "\"never mind\".",
    },
    "cancel_handoff": {
        "zh": "好的，已为您取消人工服务。还有其他问题可以直接问我。",
        "en": "Okay, I've cancelled the request for an agent. Ask me anything else any time.",
    },
    "rate_limited": {
        "zh": "您发送消息太快了，请稍等一分钟再发，之后的消息我会继续回复。",
        "en": "You're sending messages very quickly. Please wait a minute; I'll answer again after that.",
    },
    "store_unavailable_held": {
        "zh": "抱歉，系统正忙，您的消息已收到，稍后会马上回复您，请不用重发。",
        "en": "Sorry, our system is busy for a moment. Your message has arrived and we'll answer it shortly; "
              "no need to send it again.",
    },
    "store_unavailable": {
        "zh": "抱歉，系统正忙，请稍候片刻，您的消息会自动重新发送。",
        "en": "Sorry, our system is busy for a moment. Please hold on; your message will be sent again automatically.",
    },
    # --- human desk (bot/agents) ---
    "queue_position": {
        "zh": "您目前排在第{position}位，预计等待约{wait}分钟。",
        "en": "You are number {position} in the queue; the expected wait is about {wait} minutes.",
    },
    "queue_moved": {
        "zh": "排队更新：您现在排在第{position}位，预计还需等待约{wait}分钟，感谢您的耐心。",
        "en": "Queue update: you are now number {position}; about {wait} more minutes. Thank you for waiting.",
    },
    "queue_moved_no_agent": {
        "zh": "排队更新：您现在排在第{position}位，人工客服一上线就会按顺序回复您，感谢您的耐心。",
        "en": "Queue update: you are now number {position}; an agent will reply in turn as soon as one is "
              "online. Thank you for waiting.",
    },
    "no_agent_online": {
        "zh": "现在暂时没有人工客服在线，您的请求已登记，排在第{position}位。您可以直接在这里留言，"
              "方便的话留下手机号或邮箱；人工客服上线后会第一时间回复您，完整对话都会保留，您不用重复描述。",
        "en": "No agent is online right now. Your request is on record as number {position} in the queue. "
              "Please leave your message here, with a phone number or e-mail if you like; the first agent "
              "to come online will reply, and they will see this whole conversation.",
    },
    "waiting_ack": {
        "zh": "已转达给人工客服，请稍候。",
        "en": "Passed on to the agent; please hold on.",
    },
    "waiting_raised": {
        "zh": "您的情况已转达并为您加急处理，您现在排在第{position}位，人工客服会优先回复您。",
        "en": "I've passed this on and marked your request urgent; you are now number {position}, and an "
              "agent will reply to you first.",
    },
    "contact_noted": {
        "zh": "已记下您的联系方式（{contact}），人工客服会在这里回复您，必要时也会通过它联系您。",
        "en": "Noted your contact ({contact}); the agent will reply here and may also use it to reach you.",
    },
    "action_failed_sorry": {
        "zh": "抱歉，这个查询暂时没能完成，给您添麻烦了。",
        "en": "Sorry, I couldn't complete that lookup just now. ",
    },
    "handoff_refused": {
        "zh": "抱歉，目前无法为您转接人工客服。您的消息已记录；常见问题仍然可以直接问我。",
        "en": "Sorry, I can't connect you to an agent at the moment. Your message is on record, and you can "
              "still ask me common questions.",
    },
    "agent_gone": {
        "zh": "抱歉，为您服务的人工客服暂时离线了。您已回到队列（第{position}位），下一位有空的同事会接着为您处理，"
              "对话记录都在，您不用重复描述。",
        "en": "Sorry, the agent helping you has gone offline. You're back in the queue (number {position}); the "
              "next free colleague will continue and will see this whole conversation.",
    },
    "group_transferred": {
        "zh": "已为您转接给{group}的同事，请稍候，对话记录已一并转交，您不用重复描述。",
        "en": "You've been transferred to our {group} team; please hold on. They can see this whole conversation.",
    },
    "complaint_apology": {
        "zh": "非常抱歉给您带来了不好的体验，您的心情我完全理解。",
        "en": "I'm truly sorry about this experience, and I understand how frustrating it is. ",
    },
    "after_hours": {
        "zh": "现在是人工客服的非服务时间。您的留言和完整对话记录已经登记，人工客服将在{when}上班后第一时间回复您，"
              "您不用重复描述；期间可以继续补充情况。",
        "en": "Our agents are off duty right now. Your message and this whole conversation are on record, and "
              "an agent will reply first thing when we open at {when}; you won't need to repeat yourself. "
              "Feel free to add details meanwhile.",
    },
    "agent_joined": {
        "zh": "人工客服{agent}已接入，为您服务。",
        "en": "Agent {agent} has joined and will help you now.",
    },
    "agent_transferred": {
        "zh": "已为您转接给人工客服{agent}，对话记录已一并转交，您不用重复描述。",
        "en": "You've been transferred to agent {agent}, who can see this whole conversation.",
    },
    "handed_back": {
        "zh": "人工客服已结束接待，接下来由智能客服继续为您服务；需要人工时说“转人工”即可。",
        "en": "The agent has handed you back to the virtual assistant; say \"agent\" any time to reach a person.",
    },
    "survey_ask": {
        "zh": "本次服务已结束，感谢您的耐心！请为本次服务打分：1（很不满意）到 5（非常满意），回复数字或点击选项即可。",
        "en": "This conversation is resolved, thank you for your patience! How satisfied were you? "
              "Reply 1 (very unsatisfied) to 5 (very satisfied), or tap an option.",
    },
    "survey_comment": {
        "zh": "感谢您的评分！还有什么意见或建议吗？直接回复即可；没有的话回复“没有”。",
        "en": "Thanks for the rating! Any comment or suggestion? Just reply; or say \"no\" to skip.",
    },
    "survey_no_comment": {
        "zh": "没有了",
        "en": "No comment",
    },
    "survey_thanks": {
        "zh": "感谢您的反馈，我们会认真改进。还有其他问题随时问我。",
        "en": "Thank you for your feedback; we'll put it to good use. Ask me anything else any time.",
    },
    # --- business actions and Rasa (handlers/business.py, bot/rasa) ---
    "action_ask": {
        "zh": "好的，麻烦您再提供一下需要的信息，我马上为您处理。",
        "en": "Sure, could you give me the details I need? I'll take care of it right away.",
    },
    "action_failed": {
        "zh": "抱歉，这个查询暂时没能完成，给您添麻烦了。我已请人工客服接手，预计{wait}分钟内回复，"
              "对话记录会一并转过去，您不用重复描述。",
        "en": "Sorry, I couldn't complete that lookup just now, and for the trouble. I've asked a human agent "
              "to take over; they'll reply within about {wait} minutes and will see this whole conversation.",
    },
    "action_handoff": {
        "zh": "这个问题需要人工客服为您进一步处理，已为您转接，预计{wait}分钟内回复，对话记录会一并转过去。",
        "en": "This needs a human colleague, so I've passed it on; they'll reply within about {wait} minutes "
              "and will see this whole conversation.",
    },
    "action_cancelled": {
        "zh": "好的，已为您取消。还有其他问题可以直接问我。",
        "en": "Okay, cancelled. Ask me anything else any time.",
    },
    "handoff_status_waiting": {
        "zh": "您的问题已在人工客服队列中，预计{wait}分钟内会有专人回复，对话记录已一并转过去。",
        "en": "Your request is in the agent queue; someone will reply within about {wait} minutes and will "
              "see this whole conversation.",
    },
    "handoff_status_agent": {
        "zh": "人工客服正在为您处理，请稍候，有进展会第一时间告诉您。",
        "en": "An agent is working on your request; please hold on, they'll update you as soon as there's news.",
    },
    "handoff_status_none": {
        "zh": "目前没有进行中的人工服务。需要人工时说“转人工”即可，我会把对话完整转过去。",
        "en": "There's no open request for an agent right now. Say \"agent\" any time and I'll pass this "
              "whole conversation to a person.",
    },
    # --- WeChat / WeCom channels (bot/channels/wechat.py, wecom.py) ---
    "welcome_subscribe": {
        "zh": "感谢关注！我是智能客服小客，退换货、物流、支付、会员等问题直接发文字问我就行，"
              "随时说“转人工”可以找真人客服。",
        "en": "Thanks for following! I'm Kefu, the virtual assistant: just type your question about returns, "
              "delivery, payment or membership, and say \"agent\" any time to reach a person.",
    },
    # --- Telegram commands (bot/channels/telegram.py) ---
    "telegram_start": {
        "zh": "您好！我是智能客服小客，退换货、物流、支付、会员等问题直接发消息问我就行。"
              "需要人工客服时发送 /human 或说“转人工”；发送 /help 查看使用说明。",
        "en": "Hello! I'm Kefu, the virtual assistant. Just message me about returns, delivery, payment or "
              "membership. Send /human or say \"agent\" to reach a person; /help shows how I work.",
    },
    "telegram_help": {
        "zh": "使用说明：\n"
              "• 直接用文字描述您的问题，我会马上回答；\n"
              "• 有几个相近的问题时，点击按钮选择即可；\n"
              "• 图片、文件可以直接发给我，会保存在对话记录里，人工客服也能看到；\n"
              "• 发送 /human 或说“转人工”即可转接人工客服，对话记录会一并转过去，您不用重复描述；\n"
              "• 回答下方的 👍/👎 告诉我们回答有没有帮上忙；\n"
              "• 在群聊里请 @我 或回复我的消息。",
        "en": "How this works:\n"
              "• Describe your question in a message and I'll answer right away;\n"
              "• When a few questions are close, tap the button for yours;\n"
              "• Photos and files can be sent here; they stay with the conversation so an agent sees them too;\n"
              "• Send /human or say \"agent\" to reach a person, who will see this whole conversation;\n"
              "• 👍/👎 under an answer tells us whether it helped;\n"
              "• In a group, mention me or reply to my message.",
    },
    "telegram_rated": {  # the short notice after 👍/👎 under an answer
        "zh": "谢谢您的反馈！",
        "en": "Thanks for the feedback!",
    },
    "telegram_rated_wrong": {  # … after 👎: the customer is not left with a wrong answer
        "zh": "抱歉没帮上忙，已记录下来改进；您可以换个说法再问，或发送 /human 转人工。",
        "en": "Sorry that didn't help; it's noted so we can fix it. Try asking another way, or send /human.",
    },
}


def say(key: str, language: str, **values: object) -> str:
    """The text ``key`` in ``language`` (Chinese when the language is unknown), filled in."""
    variants = TEXTS[key]
    text = variants.get(language) or variants["zh"]
    return text.format(**values) if values else text
