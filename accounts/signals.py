"""Signals other apps listen to (accounts never imports them: they connect here).

``payment_recorded`` is sent inside ``payment_record``'s transaction, once per new payment
(not for a repeat of a known reference), with ``payment``, ``allocations`` (the new
PaymentAllocation rows, each with its invoice) and ``historical`` (past data being loaded:
imports, demo). A receiver that writes to the database
writes in that same transaction: if the payment rolls back, so does what it wrote.
"""

from django.dispatch import Signal

payment_recorded = Signal()
