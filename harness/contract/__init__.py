"""The contract stage: does the provider honour its document, and does the document still hold
what the integration relies on? Built on schemathesis (cases and checks), hypothesis (mapping
records) and vcrpy (cassettes)."""
