"""The provider engine: one engine, two faces (simulator and fault proxy).

Auth emulation, rate limiting, the fault plan and the traffic log apply to both faces alike.
"""
