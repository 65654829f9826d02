"""A per-user throttle for a chat bot (Telegram or any other): each user
may send so many messages per window, whatever process handles them.

Create the rule once (admin API):
  {"id": "bot-per-user", "algorithm": "token_bucket", "limit": 5, "window": "1m",
   "match": {"hosts": ["direct.invalid"]}}

Run the simulation: python3 throttle.py (with ratekit_client.py importable).
"""

import ratekit_client


def allow(user_id):
    """Whether this user's message may be handled now, and if not, after
    how many seconds to tell them to try again (None: never, the user is on
    the denylist)."""
    decision = ratekit_client.check_key("bot-per-user", user_id)
    if decision.status == 403:
        return False, None
    return decision.allowed, int(decision.headers.get("Retry-After", 0))


def handle(update):
    """What the bot answers one incoming message."""
    user_id, text = update["from"]["id"], update["text"]
    allowed, retry_after = allow(user_id)
    if retry_after is None:
        return "Sorry, this bot does not answer you."
    if not allowed:
        return f"Slow down: try again in {retry_after} s."
    return f"You said: {text}"


def simulate(updates):
    """Feeds incoming messages to the bot; returns (user id, reply) pairs."""
    return [(u["from"]["id"], handle(u)) for u in updates]


if __name__ == "__main__":
    burst = [{"from": {"id": 42}, "text": f"message {i}"} for i in range(8)]
    burst.append({"from": {"id": 7}, "text": "hello"})
    for user, reply in simulate(burst):
        print(user, reply)
