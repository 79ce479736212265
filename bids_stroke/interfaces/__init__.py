"""nipype interfaces: thin file-level wrappers around the numeric cores."""
