"""The shared results model (below the stages) and its JSON form."""
