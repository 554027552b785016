"""The composition root: settings, the CLI, channels, the scheduler and delivery."""

import os

# python-telegram-bot 22 warns that `RetryAfter.retry_after` will become a
# timedelta; opt in now (bot/telegram.py handles both) so logs stay clean.
os.environ.setdefault("PTB_TIMEDELTA", "true")
