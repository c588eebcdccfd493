"""Use cases: each opens a unit of work, applies the rules of `models`, commits, then does its side
effects (documents, emails). Flows, the CLI and the web app call these; none of them holds rules."""
