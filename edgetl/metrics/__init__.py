"""Scores of a task's predictions against its ground truth (numpy, scikit-learn, pycocotools).

No torch and no run folders: training validates with these, `evaluate` reports with them,
export's int8 search and verify's gates judge with them.
"""
