"""Every reference that bids-stroke cites, once: one table, rendered as text and as BibTeX.

Data and pure functions only: the templates (:mod:`bids_stroke.spatial.templates`) and
the reports (:mod:`bids_stroke.report`, ``logs/CITATION.md``, ``.html`` and ``.bib``) all
read :data:`BIBLIOGRAPHY`, through :data:`CITATIONS` (key -> text) and :func:`bibtex`.
"""

from __future__ import annotations

__all__ = ["BIBLIOGRAPHY", "CITATIONS", "FONOV_CITATION", "TEMPLATEFLOW_CITATION", "author_year", "bibtex",
           "citation_text"]

#: Key -> the reference's fields: ``kind`` (BibTeX entry type), ``authors`` (``"Surname
#: Initials"``; ``et_al`` when the list is cut), ``title``, ``venue`` (journal, conference
#: or publisher), ``year``, and where known ``volume``, ``number``, ``pages``, ``doi``,
#: ``note`` (e.g. an arXiv or OpenNeuro identifier, a web address).
BIBLIOGRAPHY: dict[str, dict] = {
    "moulton2023": dict(
        kind="article", authors=["Moulton E", "Valabregue R", "Piotin M"], et_al=True,
        title="Interpretable deep learning for the prognosis of long-term functional outcome post-stroke "
              "using acute diffusion weighted imaging",
        venue="J Cereb Blood Flow Metab", year=2023, volume="43", number="2", pages="198-209",
        doi="10.1177/0271678X221129230", note="Epub 2022"),
    "jetley2018": dict(
        kind="inproceedings", authors=["Jetley S", "Lord NA", "Lee N", "Torr PHS"], title="Learn to pay attention",
        venue="International Conference on Learning Representations (ICLR)", year=2018, note="arXiv:1804.02391"),
    "ants": dict(
        kind="article", authors=["Avants BB", "Epstein CL", "Grossman M", "Gee JC"],
        title="Symmetric diffeomorphic image registration with cross-correlation: evaluating automated labeling "
              "of elderly and neurodegenerative brain",
        venue="Med Image Anal", year=2008, volume="12", number="1", pages="26-41",
        doi="10.1016/j.media.2007.06.004"),
    "dipy": dict(
        kind="article", authors=["Garyfallidis E", "Brett M", "Amirbekian B"], et_al=True,
        title="Dipy, a library for the analysis of diffusion MRI data", venue="Front Neuroinform", year=2014,
        volume="8", pages="8", doi="10.3389/fninf.2014.00008"),
    "nipype": dict(
        kind="article", authors=["Gorgolewski K", "Burns CD", "Madison C"], et_al=True,
        title="Nipype: a flexible, lightweight and extensible neuroimaging data processing framework in Python",
        venue="Front Neuroinform", year=2011, volume="5", pages="13", doi="10.3389/fninf.2011.00013"),
    "keras": dict(kind="misc", authors=["Chollet F"], et_al=True, title="Keras", venue="keras.io", year=2015),
    "tensorflow": dict(
        kind="misc", authors=["Abadi M"], et_al=True,
        title="TensorFlow: large-scale machine learning on heterogeneous systems", venue="tensorflow.org",
        year=2015),
    "delong": dict(
        kind="article", authors=["DeLong ER", "DeLong DM", "Clarke-Pearson DL"],
        title="Comparing the areas under two or more correlated receiver operating characteristic curves: a "
              "nonparametric approach",
        venue="Biometrics", year=1988, volume="44", number="3", pages="837-845", doi="10.2307/2531595"),
    "bids": dict(
        kind="article", authors=["Gorgolewski KJ", "Auer T", "Calhoun VD"], et_al=True,
        title="The brain imaging data structure, a format for organizing and describing outputs of neuroimaging "
              "experiments",
        venue="Sci Data", year=2016, volume="3", pages="160044", doi="10.1038/sdata.2016.44"),
    "fonov2009": dict(
        kind="article", authors=["Fonov VS", "Evans AC", "McKinstry RC", "Almli CR", "Collins DL"],
        title="Unbiased nonlinear average age-appropriate brain templates from birth to adulthood",
        venue="NeuroImage", year=2009, volume="47", pages="S102", doi="10.1016/S1053-8119(09)70884-5"),
    "fonov2011": dict(
        kind="article", authors=["Fonov V", "Evans AC", "Botteron K", "Almli CR", "McKinstry RC", "Collins DL"],
        title="Unbiased average age-appropriate atlases for pediatric studies", venue="NeuroImage", year=2011,
        volume="54", number="1", pages="313-327", doi="10.1016/j.neuroimage.2010.07.033"),
    "templateflow": dict(
        kind="article", authors=["Ciric R", "Thompson WH", "Lorenz R"], et_al=True,
        title="TemplateFlow: FAIR-sharing of multi-scale, multi-species brain models", venue="Nat Methods",
        year=2022, volume="19", number="12", pages="1568-1571", doi="10.1038/s41592-022-01681-2"),
    "straka2010": dict(
        kind="article", authors=["Straka M", "Albers GW", "Bammer R"],
        title="Real-time diffusion-perfusion mismatch analysis in acute stroke", venue="J Magn Reson Imaging",
        year=2010, volume="32", number="5", pages="1024-1037", doi="10.1002/jmri.22338"),
    "purushotham2015": dict(
        kind="article", authors=["Purushotham A", "Campbell BCV", "Straka M"], et_al=True,
        title="Apparent diffusion coefficient threshold for delineation of ischemic core", venue="Int J Stroke",
        year=2015, volume="10", number="3", pages="348-353", doi="10.1111/ijs.12068"),
    "soop": dict(
        kind="article", authors=["Absher J"], et_al=True,
        title="The stroke outcome optimization project: acute ischemic strokes from a comprehensive stroke center",
        venue="Sci Data", year=2024, volume="11", number="1", pages="839", doi="10.1038/s41597-024-03667-5",
        note="OpenNeuro ds004889"),
    "isles": dict(
        kind="article", authors=["Hernandez Petzsche MR", "de la Rosa E", "Hanning U"], et_al=True,
        title="ISLES 2022: a multi-center magnetic resonance imaging stroke lesion segmentation dataset",
        venue="Sci Data", year=2022, volume="9", pages="762", doi="10.1038/s41597-022-01875-5"),
}


def citation_text(key: str) -> str:
    """A reference as one line of text (Vancouver style).

    Examples
    --------
    >>> citation_text("delong")[:56]
    'DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the a'
    """
    ref = BIBLIOGRAPHY[key]
    authors = ", ".join(ref["authors"]) + (", et al" if ref.get("et_al") else "")
    where = f"{ref['venue']}. {ref['year']}"
    if ref.get("volume"):
        where += f";{ref['volume']}" + (f"({ref['number']})" if ref.get("number") else "")
        where += f":{ref['pages']}" if ref.get("pages") else ""
    text = f"{authors}. {ref['title']}. {where}."
    if ref.get("note"):
        text += f" {ref['note']}."
    if ref.get("doi"):
        text += f" doi:{ref['doi']}"
    return text


def author_year(key: str) -> str:
    """How a text cites a reference: first author's surname, ``et al.`` beyond two authors, year.

    Examples
    --------
    >>> author_year("delong"), author_year("keras")
    ('DeLong et al., 1988', 'Chollet et al., 2015')
    """
    ref = BIBLIOGRAPHY[key]
    surnames = [name.rpartition(" ")[0] for name in ref["authors"]]
    if ref.get("et_al") or len(surnames) > 2:
        who = f"{surnames[0]} et al."
    else:
        who = " and ".join(surnames)
    return f"{who}, {ref['year']}"


def _bib_author(name: str) -> str:
    """``"Hernandez Petzsche MR"`` -> ``"Hernandez Petzsche, M. R."``."""
    surname, _, initials = name.rpartition(" ")
    return f"{surname}, " + " ".join(f"{letter}." for letter in initials)


def bibtex(key: str) -> str:
    """A reference as a BibTeX entry.

    Examples
    --------
    >>> print(bibtex("straka2010").splitlines()[1])
      author = {Straka, M. and Albers, G. W. and Bammer, R.},
    """
    ref = BIBLIOGRAPHY[key]
    authors = " and ".join(_bib_author(name) for name in ref["authors"]) + (" and others" if ref.get("et_al") else "")
    venue = {"article": "journal", "inproceedings": "booktitle"}.get(ref["kind"], "howpublished")
    fields = [("author", authors), ("title", "{" + ref["title"] + "}"), (venue, ref["venue"]),
              ("year", str(ref["year"]))]
    fields += [(name, str(ref[name])) for name in ("volume", "number", "pages", "doi", "note") if ref.get(name)]
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{ref['kind']}{{{key},\n{body}\n}}\n"


#: Key -> text of every reference (:func:`citation_text`).
CITATIONS = {key: citation_text(key) for key in BIBLIOGRAPHY}

#: The ICBM 2009c templates (the 2009 abstract and the 2011 paper).
FONOV_CITATION = f"{CITATIONS['fonov2009']} {CITATIONS['fonov2011']}"

#: TemplateFlow, where the templates come from when it holds them.
TEMPLATEFLOW_CITATION = CITATIONS["templateflow"]
