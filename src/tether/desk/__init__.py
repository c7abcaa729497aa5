"""The vendor's support desk (``tether-desk``): incidents, business-hours SLA
clocks, mail threading, RMA, release lifecycle and update schedules."""
