"""Figures of a plan: KPIs and response times."""
