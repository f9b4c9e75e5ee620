"""The stage map: a top view of the listener, the sources and the room (matplotlib, Agg).

Drawn in the listener's frame with the front UP and the listener's LEFT on the LEFT of the
picture, so a positive azimuth (our convention: positive = left, SOFA/AES69) appears left of the
centre line: screen x = -y = -r cos(el) sin(az), screen y = x = r cos(el) cos(az).  Distance rings
and azimuth ticks label the geometry; each source shows its track name, role, azimuth (deg, L/R),
distance (m) and elevation when not zero.  The room (from its preset's length x width) is drawn
around the listener with the stage in front; sources beyond the view are pinned at its edge.
"""
from __future__ import annotations

import math
from pathlib import Path

from stase.core.plan import Plan

FAMILY_COLOURS = {
    "voice": "#d62728", "drums": "#8c564b", "percussion": "#bc7a4a", "bass": "#1f3f99",
    "strings": "#2ca02c", "guitar": "#ff7f0e", "keys": "#9467bd", "synth": "#e377c2",
    "brass": "#d4a017", "woodwinds": "#17becf", "plucked": "#6b8e23",
}
NICE_RINGS_M = (0.5, 1, 2, 3, 5, 10, 15, 20, 30, 50, 100)


def screen_xy(azimuth_deg: float, elevation_deg: float, distance_m: float) -> tuple[float, float]:
    """Picture coordinates (m): x to the listener's right, y to the front."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    horizontal = distance_m * math.cos(el)
    return -horizontal * math.sin(az), horizontal * math.cos(az)


def azimuth_label(azimuth_deg: float) -> str:
    """"0°", "30° L", "45° R", "180°" from a signed azimuth (positive = left)."""
    a = round(float(azimuth_deg))
    if a in (0, 180, -180):
        return f"{abs(a)}°"
    return f"{abs(a)}° {'L' if a > 0 else 'R'}"


def _families() -> dict[str, str]:
    try:
        from stase.presets import load_lexicon
        return {role: spec.get("family", "") for role, spec in load_lexicon()["roles"].items()}
    except Exception:  # noqa: BLE001 - colours are cosmetic; a broken lexicon is reported elsewhere
        return {}


def _room_info(room_id: str) -> dict | None:
    try:
        from stase.presets import load_rooms
        return load_rooms().get(room_id)
    except Exception:  # noqa: BLE001 - the map still shows the sources without a room
        return None


def _spread_labels(points: list[tuple[float, float]], min_dy: float, min_dx: float) -> list[float]:
    """Label y positions (one per point) nudged apart so no two overlap."""
    order = sorted(range(len(points)), key=lambda i: points[i][1])
    ys = [p[1] for p in points]
    for _ in range(30):
        moved = False
        for a_i, a in enumerate(order):
            for b in order[a_i + 1:]:
                if abs(points[a][0] - points[b][0]) < min_dx and abs(ys[a] - ys[b]) < min_dy:
                    push = (min_dy - abs(ys[a] - ys[b])) / 2 + 1e-6
                    if ys[a] <= ys[b]:
                        ys[a] -= push
                        ys[b] += push
                    else:
                        ys[a] += push
                        ys[b] -= push
                    moved = True
        if not moved:
            break
    return ys


def _label_on_right(x: float, y: float, points: list[tuple[float, float]], limit: float) -> bool:
    """Put a label on the side with less crowding by nearby sources (ties: away from the centre)."""
    def crowd(sign: float) -> float:  # nearer neighbours weigh more
        return sum(1.0 / (sign * (px - x)) for px, py in points
                   if 0 < sign * (px - x) <= 0.45 * limit and abs(py - y) < 0.12 * limit)
    right, left = crowd(1.0), crowd(-1.0)
    return x >= 0 if right == left else right < left


def draw_stage_map(plan: Plan, path: str | Path, title: str | None = None, subtitle: str | None = None,
                   dpi: int = 120) -> Path:
    """Draw ``plan`` as a PNG at ``path`` and return the path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Ellipse, Polygon, Rectangle

    families = _families()
    points = [screen_xy(s.azimuth_deg, s.elevation_deg, s.distance_m) for s in plan.sources]
    reach = max([math.hypot(x, y) for x, y in points] + [2.0])
    limit = reach * 1.28 + 0.6
    low = min(-0.45 * limit, min(y for _, y in points) * 1.2 - 0.25 * reach)
    low = max(low, -limit)
    plot_h = 8.0 * (limit - low) / (2 * limit)
    fig, ax = plt.subplots(figsize=(8.0, plot_h + 1.3), dpi=dpi)
    fig.subplots_adjust(left=0.02, right=0.98, top=plot_h / (plot_h + 1.3) + 0.02,
                        bottom=0.45 / (plot_h + 1.3))
    ax.set_xlim(-limit, limit)
    ax.set_ylim(low, limit)
    ax.set_aspect("equal")
    ax.axis("off")

    room = _room_info(plan.room)
    if room is not None:
        length, width = float(room["dimensions_m"][0]), float(room["dimensions_m"][1])
        front = min(max(max(y for _, y in points) + 1.5, 0.3 * length), 0.8 * length)
        ax.add_patch(Rectangle((-width / 2, front - length), width, length, fill=True,
                               facecolor="#f4f1ea", edgecolor="#7a6f5a", linewidth=2.0, zorder=0))
        room_text = f"{room['name']}: {length:g} × {width:g} m, RT60 {room['rt60_s']:g} s"
    else:
        room_text = f"room: {plan.room}"

    # distance rings and azimuth spokes
    rings = [r for r in NICE_RINGS_M if r <= reach * 1.15]
    rings = rings[-4:] if len(rings) > 4 else rings
    # ring labels go along the free direction farthest from every source
    label_az = max((-105.0, 105.0, -75.0, 75.0, -135.0, 135.0), key=lambda a: min(
        [abs((a - s.azimuth_deg + 180.0) % 360.0 - 180.0) for s in plan.sources] + [360.0]))
    labelled = -1.0
    for r in rings:
        ax.add_patch(Circle((0, 0), r, fill=False, linestyle=(0, (2, 3)), color="#9a9a9a", lw=0.8, zorder=1))
        if r - labelled < 0.09 * limit:
            continue  # too close to the last labelled ring to be read
        labelled = r
        lx, ly = screen_xy(label_az, 0.0, r)
        ax.text(lx, ly, f"{r:g} m", fontsize=7.5, color="#6d6d6d", ha="center", va="center", zorder=2,
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
    tick_r = reach * 1.16
    for az in range(-150, 181, 30):
        x, y = screen_xy(az, 0, tick_r)
        ax.plot([0, x * 0.985], [0, y * 0.985], color="#c9c9c9", lw=0.6, zorder=1)
        if y * 1.05 >= low + 0.03 * limit:
            ax.text(x * 1.05, y * 1.05, azimuth_label(az), fontsize=8, color="#555555",
                    ha="center", va="center", zorder=2)

    # the listener: head, nose to the front, ears
    head = max(0.045 * limit, 0.12)
    ax.add_patch(Circle((0, 0), head, facecolor="#ffe3c4", edgecolor="#333333", lw=1.2, zorder=5))
    ax.add_patch(Polygon([(-0.35 * head, 0.9 * head), (0.35 * head, 0.9 * head), (0, 1.45 * head)],
                         closed=True, facecolor="#ffe3c4", edgecolor="#333333", lw=1.2, zorder=4))
    for side in (-1, 1):
        ax.add_patch(Ellipse((side * 1.02 * head, 0), 0.3 * head, 0.6 * head, facecolor="#f2c9a0",
                             edgecolor="#333333", lw=1.0, zorder=4))
    ax.text(0, -1.9 * head, "listener", ha="center", va="top", fontsize=8, color="#333333", zorder=5)
    ax.text(-limit * 0.97, -0.07 * limit, "LEFT", fontsize=11, color="#8a8a8a", ha="left", va="center",
            weight="bold")
    ax.text(limit * 0.97, -0.07 * limit, "RIGHT", fontsize=11, color="#8a8a8a", ha="right", va="center",
            weight="bold")
    ax.annotate("", xy=(-limit * 0.9, limit * 0.98), xytext=(-limit * 0.9, limit * 0.84),
                arrowprops=dict(arrowstyle="-|>", color="#8a8a8a", lw=1.4))
    ax.text(-limit * 0.87, limit * 0.9, "front", fontsize=9, color="#8a8a8a", va="center")

    # the sources
    label_ys = _spread_labels([(x, y) for x, y in points], min_dy=limit * 0.085, min_dx=limit * 0.42)
    for s, (x, y), ly in zip(plan.sources, points, label_ys):
        colour = FAMILY_COLOURS.get(families.get(s.role or "", ""), "#555555")
        ax.plot([0, x], [0, y], color=colour, lw=0.9, alpha=0.35, zorder=2)
        size = 0.028 * limit
        ax.add_patch(Circle((x, y), size, facecolor=colour, edgecolor="white", lw=1.5, zorder=6))
        detail = f"{azimuth_label(s.azimuth_deg)} · {s.distance_m:.1f} m"
        if abs(s.elevation_deg) >= 0.5:
            detail += f" · el {s.elevation_deg:+.0f}°"
        right_side = _label_on_right(x, y, points, limit)
        lx = x + (1 if right_side else -1) * size * 1.6
        ax.annotate(f"{s.track}", xy=(x, y), xytext=(lx, ly + size * 0.35),
                    fontsize=10, weight="bold", color="#202020", zorder=7,
                    ha="left" if right_side else "right", va="bottom")
        role = (s.role or "").replace("_", " ")
        same = (s.role or "").lower() == s.track.lower() or role.lower() == s.track.lower()
        ax.text(lx, ly - size * 0.2, f"{role} | {detail}" if role and not same else detail, fontsize=8, color="#404040", ha="left" if right_side else "right",
                va="top", zorder=7)

    top = 1.0 - 0.35 / (plot_h + 1.3)
    fig.text(0.5, top, title or "Stage map", fontsize=14, weight="bold", ha="center", va="center")
    fig.text(0.5, top - 0.4 / (plot_h + 1.3), subtitle or room_text, ha="center", va="center",
             fontsize=9.5, color="#333333", wrap=True)
    fig.text(0.5, 0.2 / (plot_h + 1.3), f"{room_text}   |   top view, front up; azimuth 0° = front, positive = left "
             "(SOFA/AES69)", ha="center", fontsize=7.8, color="#555555")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path
