"""People's ratings of contenders' answers: the review page (`adaptlab review RUN`), its plan, and the ratings file.

review/ratings.py  a Rating, where ratings are kept (RUN/ratings/<reviewer>.jsonl) and how they are read,
                   appended and imported
review/plan.py     which row and pair a reviewer sees next, and on which side each answer goes
review/app.py      the page and its small JSON API over a run folder
"""

from adaptlab.reviews.ratings import PREFERENCE_VALUE, Rating, append_rating, import_ratings, load_ratings, oriented

__all__ = ["PREFERENCE_VALUE", "Rating", "append_rating", "import_ratings", "load_ratings", "oriented"]
