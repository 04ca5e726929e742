"""Revenue insights: GHL's money on the mapped locations, by period, product and location.

`source` reads GHL (paged, cached briefly, within the location's budget), `figures` holds the pure
rules (its docstring states them), `service` + `routes` answer `/insights/revenue[.csv]` and the
`/insights` page; `chart` draws the SVG, `query` parses the filters, `render` the CSV.
"""
