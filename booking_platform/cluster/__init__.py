"""The cluster profile's moving parts: its databases, its processes and how runs reach it."""
