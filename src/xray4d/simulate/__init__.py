"""Simulated recordings with ground truth.

The package follows the simulation's data flow:

* scenes, one module per family: :mod:`.droplets` (a binary droplet collision:
  approach, contact, coalescence through a growing neck, damped oscillation of
  the merged drop, or stretching separation; its model in
  :mod:`.droplet_kinematics`), :mod:`.ellipsoid` (a rigid tumbling ellipsoid
  with a hollow inclusion), :mod:`.jet` (a jet pinching off into drops),
  :mod:`.bubble` (a bubble rising in a liquid column), :mod:`.spray` (many small
  drops), :mod:`.mixing` (two liquids merging and mixing), :mod:`.tripod` (a
  tumbling non-convex body), :mod:`.crown` (a splash's thin crown on a film) and
  :mod:`.wide` (a cylinder wider than the field of view); what they share
  (anti-aliased signed distances, boxes, the recording) is in :mod:`.scene`;
* :mod:`.library`: the scenes by name (:data:`SCENES`, :func:`get_scene`), as the
  CLI (``xray4d simulate --list``) and the benchmark (``--cases``) offer them;
* :mod:`.sampling`: the fine grid scenes are rendered on, and its reduction to voxels;
* :mod:`.acquisition`: line integrals on a finer detector, noise, the angles of a
  rotating sample seen once per frame (:func:`~.acquisition.rotating_angles`), and
  :func:`simulate_recording` (projections of a volume you already have, the
  ``xray4d project`` verb);
* :mod:`.intensity`: the droplet collision recorded as detector counts (exit
  waves, Fresnel propagation, PSF, photon counting, flat and dark fields).

Every scene module offers the same three things: a frozen dataclass of its
parameters (lengths in units of the field of view, times normalised to the movie,
0 at the first frame and 1 at the last), ``<scene>_truth(params, size, frames, *,
oversample)`` (the voxel-averaged truth f[t, z, y, x]) and ``simulate_<scene>(params,
size, frames, angles_deg, noise, seed, *, oversample, frame_interval_s)`` (a
``line_integral`` :class:`~xray4d.data.Recording` with that truth; the scenes of
:mod:`.scene` make it with :func:`~.scene.record`). Inside, a scene
renders each frame on the fine grid as a :data:`~.sampling.FineFrame`;
:func:`~.sampling.voxelise` turns those into the truth and
:func:`~.acquisition.acquire` into the truth and the projections.
"""
from .acquisition import add_noise, rotating_angles, simulate_recording
from .droplet_kinematics import DropletCollision, DropletState, droplet_state
from .droplets import droplet_truth, simulate_droplets
from .ellipsoid import RigidEllipsoid, rigid_ellipsoid_truth, simulate_rigid_ellipsoid
from .intensity import droplet_exit_waves, fresnel_unity_distance_m, simulate_droplets_intensity
from .library import SCENES, Scene, get_scene, scene_names
from .sampling import normalised_times

__all__ = ["DropletCollision", "DropletState", "droplet_state", "droplet_truth",
           "simulate_droplets", "simulate_recording", "add_noise", "rotating_angles", "normalised_times",
           "RigidEllipsoid", "rigid_ellipsoid_truth", "simulate_rigid_ellipsoid",
           "simulate_droplets_intensity", "fresnel_unity_distance_m",
           "droplet_exit_waves", "SCENES", "Scene", "get_scene", "scene_names"]
