"""Deliverability: bounces and complaints -> suppression reports (`report_undeliverable`)."""
