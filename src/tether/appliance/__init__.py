"""The /appliance face: the machine's identity, its admin account, networking,
security, syslog and SMTP settings, and the appliance database that holds
them. Certificates live in ``tether.certs``; the site in ``tether.site``."""
