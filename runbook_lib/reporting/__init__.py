"""Reports: papermill execution, the typed summary, the HTML report, plots and the reports index."""
