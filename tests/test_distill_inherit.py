"""Weight inheritance: the teacher's tensors cut to a narrower student of its family (shapes, the exact slices,
Mamba's packed tensors segment by segment, a student that runs) and the refusals."""

from __future__ import annotations

import pytest
import torch

import ssmblocks
from ssmblocks.blocks import Mamba
from ssmblocks.distill import inherit_weights

BLOCK = "layers.1.residual_group.blocks.0.mixer."


def _dvmsr_pair() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    teacher = ssmblocks.create_model("test_dvmsr", embed_dim=32, d_state=8)   # d_inner 64, dt_rank 2
    student = ssmblocks.create_model("test_dvmsr", embed_dim=16, d_state=4)   # d_inner 32, dt_rank 1
    return teacher, student


def test_the_student_gets_the_teachers_leading_channels_and_runs():
    teacher, student = _dvmsr_pair()
    state = inherit_weights(teacher, student)
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in student.state_dict().items()}
    student.load_state_dict(state)                   # strict
    t = teacher.state_dict()
    # plain layouts: the leading channels of each dimension
    assert torch.equal(student.conv_first.weight, t["conv_first.weight"][:16])
    assert torch.equal(student.upsample[0].weight, t["upsample.0.weight"][:, :16])   # all 48 output channels kept
    assert torch.equal(student.layers[0].conv.weight, t["layers.0.conv.weight"][:16, :16])
    assert torch.equal(student.norm_f.bias, t["norm_f.bias"][:16])
    s = student.state_dict()
    assert torch.equal(s[BLOCK + "A_log"], t[BLOCK + "A_log"][:32, :4])
    assert torch.equal(s[BLOCK + "out_proj.weight"], t[BLOCK + "out_proj.weight"][:16, :32])
    assert torch.equal(s[BLOCK + "dt_proj.weight"], t[BLOCK + "dt_proj.weight"][:32, :1])
    # packed: in_proj rows are [x (64) | z (64)], x_proj rows [dt (2) | B (8) | C (8)]
    in_proj = t[BLOCK + "in_proj.weight"]
    assert torch.equal(s[BLOCK + "in_proj.weight"], torch.cat([in_proj[0:32, :16], in_proj[64:96, :16]]))
    x_proj = t[BLOCK + "x_proj.weight"]
    assert torch.equal(s[BLOCK + "x_proj.weight"], torch.cat([x_proj[0:1, :32], x_proj[2:6, :32], x_proj[10:14, :32]]))
    out = student.eval()(torch.rand(1, 3, 5, 6))
    assert out.shape == (1, 3, 20, 24) and torch.isfinite(out).all()


def test_a_student_as_wide_as_the_teacher_is_the_teacher():
    teacher, _ = _dvmsr_pair()
    twin = ssmblocks.create_model("test_dvmsr", embed_dim=32, d_state=8)
    twin.load_state_dict(inherit_weights(teacher, twin))
    x = torch.rand(1, 3, 4, 5)
    assert torch.equal(twin.eval()(x), teacher.eval()(x))


@torch.no_grad()
def test_packed_segments_keep_their_meaning():
    """A teacher mixer whose extra inner channels, dt ranks and states are dead (zero where they would reach the
    output) computes what the inherited narrow mixer computes: only right segment-wise slicing gets this."""
    torch.manual_seed(1)
    teacher = Mamba(8, d_state=8, expand=2, dt_rank=4)                    # d_inner 16
    student = Mamba(8, d_state=4, expand=1, dt_rank=2)                    # d_inner 8
    teacher.x_proj.weight[:, 8:] = 0                                      # inner channels 8.. reach nothing
    teacher.out_proj.weight[:, 8:] = 0
    teacher.dt_proj.weight[:, 2:] = 0                                     # dt ranks 2.. are unused
    teacher.x_proj.weight[4 + 4:4 + 8] = 0                                # B states 4.. stay zero
    student.load_state_dict(inherit_weights(teacher, student))
    x = torch.randn(2, 3, 5, 8)
    torch.testing.assert_close(student(x), teacher(x), rtol=1e-5, atol=1e-6)


def test_refusals_name_the_problem():
    teacher, student = _dvmsr_pair()
    with pytest.raises(ValueError, match=r"conv_first.weight: the student's \(32, 3, 3, 3\) is not a narrowing"):
        inherit_weights(student, teacher)
    with pytest.raises(ValueError, match="different tensors"):
        inherit_weights(teacher, ssmblocks.create_model("test_dvmsr", embed_dim=16, depths=(1, 1, 1)))
    with pytest.raises(TypeError, match="a Mamba student for a DVMSR teacher"):
        inherit_weights(teacher, Mamba(8))
    mambair = ssmblocks.create_model("test_mambair_light")
    with pytest.raises(TypeError, match="does not know how"):
        inherit_weights(mambair, mambair)
