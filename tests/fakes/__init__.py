"""Fakes of the network services youhu talks to, for tests and benchmarks.

Real clients (python-telegram-bot, our httpx WeCom client) talk to them over
loopback HTTP; nothing in a library is mocked. Import each fake from its
module (``tests.fakes.telegram_api``, ``tests.fakes.wecom_api``,
``tests.fakes.wecom_callbacks``), so that using one does not load the others.
"""
