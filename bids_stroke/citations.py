"""Every reference that bids-stroke cites, once (key -> text).

Data only, with no imports: the templates (:mod:`bids_stroke.spatial.templates`) and the
reports (:mod:`bids_stroke.report`) both read this table.
"""

__all__ = ["CITATIONS", "FONOV_CITATION", "TEMPLATEFLOW_CITATION"]

#: References cited by the templates, the reports and ``logs/CITATION.md`` (key -> text).
CITATIONS = {
    "moulton2022": "Moulton E, Valabregue R, Piotin M, et al. Interpretable deep learning for the prognosis "
                   "of long-term functional outcome post-stroke using acute diffusion weighted imaging. "
                   "J Cereb Blood Flow Metab. 2022. doi:10.1177/0271678X221129230",
    "jetley2018": "Jetley S, Lord NA, Lee N, Torr PHS. Learn to pay attention. International Conference on "
                  "Learning Representations (ICLR) 2018. arXiv:1804.02391",
    "ants": "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image registration with "
            "cross-correlation: evaluating automated labeling of elderly and neurodegenerative brain. "
            "Med Image Anal. 2008;12(1):26-41. doi:10.1016/j.media.2007.06.004",
    "dipy": "Garyfallidis E, Brett M, Amirbekian B, et al. Dipy, a library for the analysis of diffusion "
            "MRI data. Front Neuroinform. 2014;8:8. doi:10.3389/fninf.2014.00008",
    "nipype": "Gorgolewski K, Burns CD, Madison C, et al. Nipype: a flexible, lightweight and extensible "
              "neuroimaging data processing framework in Python. Front Neuroinform. 2011;5:13. "
              "doi:10.3389/fninf.2011.00013",
    "keras": "Chollet F, et al. Keras. 2015. Software available from keras.io",
    "tensorflow": "Abadi M, et al. TensorFlow: large-scale machine learning on heterogeneous systems. 2015. "
                  "Software available from tensorflow.org",
    "delong": "DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated "
              "receiver operating characteristic curves: a nonparametric approach. Biometrics. "
              "1988;44(3):837-845. doi:10.2307/2531595",
    "bids": "Gorgolewski KJ, Auer T, Calhoun VD, et al. The brain imaging data structure, a format for "
            "organizing and describing outputs of neuroimaging experiments. Sci Data. 2016;3:160044. "
            "doi:10.1038/sdata.2016.44",
    "fonov": "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear average "
             "age-appropriate brain templates from birth to adulthood. NeuroImage 2009;47:S102. "
             "doi:10.1016/S1053-8119(09)70884-5. Fonov V, Evans AC, Botteron K, Almli CR, "
             "McKinstry RC, Collins DL. Unbiased average age-appropriate atlases for pediatric "
             "studies. NeuroImage 2011;54(1):313-327. doi:10.1016/j.neuroimage.2010.07.033.",
    "templateflow": "Ciric R, Thompson WH, Lorenz R, et al. TemplateFlow: FAIR-sharing of multi-scale, "
                    "multi-species brain models. Nat Methods 2022;19:1568-1571. "
                    "doi:10.1038/s41592-022-01681-2.",
    "straka2010": "Straka M, Albers GW, Bammer R. Real-time diffusion-perfusion mismatch analysis in acute "
                  "stroke. J Magn Reson Imaging. 2010;32(5):1024-1037. doi:10.1002/jmri.22338",
    "purushotham2015": "Purushotham A, Campbell BCV, Straka M, et al. Apparent diffusion coefficient threshold "
                       "for delineation of ischemic core. Int J Stroke. 2015;10(3):348-353. "
                       "doi:10.1111/ijs.12068",
    "soop": "Absher J, et al. The stroke outcome optimization project: acute ischemic strokes from a "
            "comprehensive stroke center. Sci Data. 2024. (OpenNeuro ds004889)",
    "isles": "Hernandez Petzsche MR, de la Rosa E, Hanning U, et al. ISLES 2022: a multi-center magnetic "
             "resonance imaging stroke lesion segmentation dataset. Sci Data. 2022;9:762. "
             "doi:10.1038/s41597-022-01875-5",
}

#: The ICBM 2009c templates (the 2009 abstract and the 2011 paper).
FONOV_CITATION = CITATIONS["fonov"]

#: TemplateFlow, where the templates come from when it holds them.
TEMPLATEFLOW_CITATION = CITATIONS["templateflow"]
