"""The participant-level workflow: one nipype workflow per participant (and session)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from bids.layout import parse_file_entities
from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from bids_stroke.bids.layout import DwiInputs
from bids_stroke.bids.naming import derivative_path, participant_label
from bids_stroke.interfaces.bids import DerivativesDataSink
from bids_stroke.interfaces.dwi import BrainMask, LesionMeasures, ModelInput, PrepareDWI
from bids_stroke.interfaces.lesion import AutoLesion, BinaryLesion
from bids_stroke.interfaces.model import PredictEnsemble, attention_metadata, predictions_metadata
from bids_stroke.interfaces.registration import ApplyTransform, RegisterToTemplate
from bids_stroke.model.spec import SCALES
from bids_stroke.preprocess.dwi import has_b0
from bids_stroke.spatial.templates import DEFAULT_RESOLUTION, TemplateSet

LOGGER = logging.getLogger("bids_stroke")


def workflow_name(subject: str, session: str | None) -> str:
    """Name of one participant's workflow (nipype names allow letters, digits and _)."""
    return f"sub_{subject}" + (f"_ses_{session}" if session else "") + "_wf"


def init_participant_wf(
    *,
    inputs: DwiInputs,
    output_dir: str | Path,
    templates: TemplateSet,
    omp_nthreads: int = 1,
    seed: int = 0,
    model: str | Path | None = None,
    lesion_source: str = "given-or-auto",
    lesion_label: int | None = None,
    covariates: dict | None = None,
    links: dict | None = None,
    name: str | None = None,
) -> pe.Workflow:
    """Build the workflow that turns one participant's DWI into its derivatives.

    Parameters
    ----------
    inputs : DwiInputs
        The participant's files (:func:`bids_stroke.bids.layout.collect_data`).
    output_dir : path-like
        OUTPUT_DIR, the derivatives dataset.
    templates : TemplateSet
        The T2w template (brain-extracted image and mask at 2 mm) to register to; its
        ``space`` names the template-space outputs.
    omp_nthreads : int, default=1
        Threads for ANTs.
    seed : int, default=0
        Seed of ANTs' random sampling.
    model : path-like, optional
        A trained ensemble bundle: adds the predictions and the attention maps (native
        grid and template space).
    lesion_source : {"given-or-auto", "given", "auto"}, default="given-or-auto"
        Which lesion mask the lesion-aware steps use: the given one (``inputs.lesion_mask``),
        else the automatic one (:mod:`bids_stroke.preprocess.lesion_auto`, computed
        whenever an ADC exists, also beside a given mask for its Dice); ``given``: only a
        given mask; ``auto``: only the automatic one (a given mask is ignored).
    lesion_label : int, optional
        The lesion's value in a given mask that is an integer label map
        (:func:`~bids_stroke.preprocess.lesion.binarize_lesion`).
    covariates : dict, optional
        The participant's values of the bundle's clinical-fusion columns (with ``model``):
        adds the ``ensemble+clinical`` prediction when all are present.
    links : dict, optional
        Dataset name -> root of the datasets the inputs come from
        (:func:`bids_stroke.bids.dataset.dataset_links`): the ``Sources`` of the sidecars
        name input files by BIDS URIs relative to them.
    name : str, optional
        Workflow name; by default :func:`workflow_name`.

    Inputs
    ------
    None: the files are fixed when the workflow is built.

    Outputs (in OUTPUT_DIR, named by :func:`~bids_stroke.bids.naming.derivative_path`)
    -------
    ``space-model_desc-preproc_dwi`` (+ sidecar), ``space-model_label-lesion_mask``,
    ``desc-brain_mask``, ``desc-adc_dwi`` (when available), the two ANTs transforms,
    ``space-<TPL>_res-2_label-lesion_mask``, ``space-<TPL>_res-2_desc-b0_dwiref``,
    ``desc-lesion_measures.json``, ``label-lesion_desc-auto_mask`` (the automatic mask, native
    grid, with its method in the sidecar); with ``model``: ``desc-ensemble_predictions.tsv``,
    ``desc-<a1|a2|a3>_attention`` and ``space-<TPL>_res-2_desc-<a1|a2|a3>_attention``.
    """
    workflow = pe.Workflow(name=name or workflow_name(inputs.subject, inputs.session))
    source = str(inputs.dwi or inputs.trace)
    space = templates.space
    out = str(output_dir)

    prepare = pe.Node(PrepareDWI(), name="prepare_dwi")
    if inputs.dwi is not None:
        prepare.inputs.dwi = str(inputs.dwi)
        prepare.inputs.bval = str(inputs.bval)
    else:
        prepare.inputs.trace = str(inputs.trace)
        if inputs.trace_b_value is not None:
            prepare.inputs.trace_b_value = float(inputs.trace_b_value)
        if inputs.adc is not None:
            prepare.inputs.adc = str(inputs.adc)

    brain = pe.Node(BrainMask(), name="brain_mask")
    if inputs.brain_mask is not None:
        brain.inputs.user_mask = str(inputs.brain_mask)

    model_input = pe.Node(ModelInput(), name="model_input")
    register = pe.Node(
        RegisterToTemplate(
            fixed=str(templates.t2w_brain.path), fixed_mask=str(templates.mask.path),
            seed=seed, num_threads=omp_nthreads,
        ),
        name="registration",
        n_procs=omp_nthreads,
    )
    b0_to_template = pe.Node(ApplyTransform(reference=str(templates.t2w_brain.path)), name="b0_to_template")
    measures = pe.Node(LesionMeasures(template_space=space), name="lesion_measures")

    def sink(name, **entities):
        return pe.Node(
            DerivativesDataSink(base_directory=out, source_file=source, entities=entities,
                                links={k: str(v) for k, v in (links or {}).items() if v is not None}),
            name=name, run_without_submitting=True,
        )

    ds_preproc = sink("ds_preproc", space="model", desc="preproc", suffix="dwi", extension=".nii.gz")
    ds_brain = sink("ds_brain_mask", desc="brain", suffix="mask", extension=".nii.gz")
    ds_b0_tpl = sink("ds_b0_template", space=space, res=DEFAULT_RESOLUTION, desc="b0",
                     suffix="dwiref", extension=".nii.gz")
    ds_forward = sink("ds_forward_xfm", **{"from": "dwi", "to": space, "mode": "image",
                                             "suffix": "xfm", "extension": ".h5"})
    ds_inverse = sink("ds_inverse_xfm", **{"from": space, "to": "dwi", "mode": "image",
                                             "suffix": "xfm", "extension": ".h5"})
    ds_measures = sink("ds_lesion_measures", desc="lesion", suffix="measures", extension=".json")

    workflow.connect([
        (prepare, brain, [("reference", "in_file")]),
        (prepare, model_input, [("trace", "in_file"), ("metadata", "source_metadata")]),
        (brain, model_input, [("out_mask", "brain_mask")]),
        (prepare, register, [("reference", "moving")]),
        (brain, register, [("out_mask", "brain_mask")]),
        (prepare, b0_to_template, [("reference", "in_file")]),
        (register, b0_to_template, [("forward", "transform")]),
        (model_input, ds_preproc, [("out_file", "in_file"), ("metadata", "metadata")]),
        (brain, ds_brain, [("out_mask", "in_file"), ("metadata", "metadata")]),
        (b0_to_template, ds_b0_tpl, [("out_file", "in_file")]),
        (register, ds_forward, [("forward", "in_file"), ("metadata", "metadata")]),
        (register, ds_inverse, [("inverse", "in_file"), ("metadata", "metadata")]),
        (measures, ds_measures, [("out_file", "in_file")]),
    ])

    # a 4D series gives an ADC map only with a b = 0 volume
    has_adc = inputs.adc is not None or (
        inputs.dwi is not None and has_b0(np.atleast_1d(np.loadtxt(inputs.bval, dtype=np.float64))))
    if has_adc:
        ds_adc = sink("ds_adc", desc="adc", suffix="dwi", extension=".nii.gz")
        workflow.connect([(prepare, ds_adc, [("adc", "in_file")])])

    given = inputs.lesion_mask if lesion_source != "auto" else None
    auto = None
    if lesion_source != "given" and has_adc:
        auto = pe.Node(AutoLesion(sources=[str(Path(p).absolute()) for p in (inputs.dwi, inputs.trace, inputs.adc)
                                           if p is not None]), name="auto_lesion")
        ds_auto = sink("ds_auto_lesion", label="lesion", desc="auto", suffix="mask", extension=".nii.gz")
        workflow.connect([
            (prepare, auto, [("trace", "trace"), ("adc", "adc")]),
            (brain, auto, [("out_mask", "brain_mask")]),
            (auto, ds_auto, [("out_mask", "in_file"), ("metadata", "metadata")]),
        ])
    elif lesion_source != "given" and given is None:
        LOGGER.warning("%s: no ADC (a trace-only export without rec-ADC, or a 4D series without a b = 0 "
                       "volume), so no automatic lesion mask; processed without a lesion mask.",
                       participant_label({"subject": inputs.subject, "session": inputs.session}))

    if given is not None or auto is not None:
        lesion = pe.Node(niu.IdentityInterface(fields=["mask"]), name="lesion")
        if given is not None:
            binary = pe.Node(BinaryLesion(in_file=str(given)), name="binary_lesion")
            if lesion_label is not None:
                binary.inputs.label = int(lesion_label)
            workflow.connect([(binary, lesion, [("out_mask", "mask")]),
                              (binary, measures, [("info", "lesion_info")])])
            measures.inputs.lesion_source = "given"
            measures.inputs.lesion_output = str(given)
            if auto is not None:
                workflow.connect([(auto, measures, [("out_mask", "auto_mask")])])
        else:
            measures.inputs.lesion_source = "auto"
            workflow.connect([(auto, lesion, [("out_mask", "mask")]),
                              (ds_auto, measures, [("out_file", "lesion_output")])])
        lesion_to_template = pe.Node(
            ApplyTransform(reference=str(templates.t2w_brain.path), is_mask=True), name="lesion_to_template"
        )
        ds_lesion_model = sink("ds_lesion_model", space="model", label="lesion", suffix="mask",
                               extension=".nii.gz")
        ds_lesion_tpl = sink("ds_lesion_template", space=space, res=DEFAULT_RESOLUTION, label="lesion",
                             suffix="mask", extension=".nii.gz")
        # the sidecars name the lesion mask they come from: the given one, or the automatic
        # one as ds_auto_lesion stores it
        lesion_file = str(given) if given is not None else str(derivative_path(
            out, {**parse_file_entities(source), "subject": inputs.subject, "session": inputs.session},
            label="lesion", desc="auto", suffix="mask", extension=".nii.gz"))
        for ds, grid in ((ds_lesion_model, "the model grid"), (ds_lesion_tpl, f"{space} (nearest neighbour)")):
            ds.inputs.metadata = {"Type": "Lesion", "Sources": [str(Path(lesion_file).absolute())],
                                  "Description": f"The lesion mask resampled onto {grid}."}
        workflow.connect([
            (lesion, model_input, [("mask", "lesion_mask")]),
            (lesion, register, [("mask", "lesion_mask")]),
            (lesion, lesion_to_template, [("mask", "in_file")]),
            (register, lesion_to_template, [("forward", "transform")]),
            (lesion, measures, [("mask", "lesion_mask")]),
            (lesion_to_template, measures, [("out_file", "template_lesion")]),
            (model_input, ds_lesion_model, [("out_lesion", "in_file")]),
            (lesion_to_template, ds_lesion_tpl, [("out_file", "in_file")]),
        ])
    if model is not None:
        from bids_stroke.model.bundle import read_manifest
        from bids_stroke.report.model_card import card_summary

        manifest = read_manifest(model)
        variants = [v["name"] for v in manifest["variants"]]
        predict = pe.Node(PredictEnsemble(bundle=str(model), covariates=covariates or {}), name="predict",
                          n_procs=omp_nthreads)
        ds_predictions = sink("ds_predictions", desc="ensemble", suffix="predictions", extension=".tsv")
        ds_predictions.inputs.metadata = predictions_metadata(str(model), card_summary(manifest))
        workflow.connect([
            (model_input, predict, [("out_file", "model_input")]),
            (prepare, predict, [("trace", "reference")]),
            (predict, ds_predictions, [("predictions", "in_file")]),
        ])
        for scale in SCALES:
            meta = attention_metadata(scale, variants, model)
            to_template = pe.Node(ApplyTransform(reference=str(templates.t2w_brain.path)),
                                  name=f"{scale}_to_template")
            ds_native = sink(f"ds_{scale}_attention", desc=scale, suffix="attention", extension=".nii.gz")
            ds_template = sink(f"ds_{scale}_attention_template", space=space, res=DEFAULT_RESOLUTION,
                               desc=scale, suffix="attention", extension=".nii.gz")
            ds_native.inputs.metadata = meta
            ds_template.inputs.metadata = meta
            workflow.connect([
                (predict, ds_native, [(scale, "in_file")]),
                (predict, to_template, [(scale, "in_file")]),
                (register, to_template, [("forward", "transform")]),
                (to_template, ds_template, [("out_file", "in_file")]),
            ])
    return workflow
