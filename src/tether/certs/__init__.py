"""Certificates: the built-in certificate, the certificate store (keys sealed
with the appliance key), and the TLS contexts the listeners present."""
