"""Pure rules: ids, field validation and limits, Message/Event/Thing, merge-patch, errors."""
