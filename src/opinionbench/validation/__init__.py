"""Data validation with Great Expectations: suites in `expectations/*.json`, run by the `validate`
and `validate-predictions` stages.

`derive` reads predictions files and turns tables into check columns (pure pandas),
`exclusions` removes explained items, `runner` runs the GX suites and writes Data Docs,
`summary` prints the one-screen report.
Great Expectations is imported only by `runner`, so importing this package stays cheap.
"""
