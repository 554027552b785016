"""The conversations, written once for every channel.

An adapter in `bot/` turns a platform update into a `messages.Incoming` and
calls `conversations.Conversations.handle`, which returns `messages.Reply`s;
`notices.render` turns an outbox message into replies for its member.

- `messages`: the channel-neutral message types; `buttons`: button data.
- `conversations`: the entry point — identity, redelivery, routing.
- `registration` (/start, /invite), `raising` (/call), `actions` (the call
  buttons: liaison and caller actions, and their short dialogs), `general`
  (/help, /lang, /cancel, /mine), `dispatch` (the command centre's commands).
- `notices`, `cards`, `labels`, `errors`: what the member reads.
- `dialogs`, `turn`: dialog state in the database; one turn's context.
- `i18n`: catalogs and Babel formatting per member; `menu`: command menus.

Nothing here imports a platform library (telegram, wechatpy, httpx).
"""
