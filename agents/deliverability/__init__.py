"""Deliverability: bounces and complaints -> suppression reports (published by the tracker)."""
