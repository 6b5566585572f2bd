"""Bookkeeping after the answer: pricing schemes and the month's counter, the cost ledger.

Called once an answer is in hand and never able to fail it: a pricing error is priced at the first
tier and logged, a ledger write happens off the event loop.
"""
