"""Non-local medical settlement (Art. 23): the bill's split by the insured region's policy, filings, the records,
monthly clearing and reconciliation."""

__all__: list[str] = []
