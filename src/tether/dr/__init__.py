"""Disaster-recovery rehearsal (DR-02): the drill (restore rehearsal on a
scratch appliance, planned or unplanned failover of a pair), its reports and
their timeline chart. Never imports ``web``, ``cli`` or ``runtime``."""
