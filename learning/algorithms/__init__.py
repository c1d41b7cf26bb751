"""Learning algorithms: multi-task SAC and its DnC / UDS variants."""
