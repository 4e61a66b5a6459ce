"""Each repair of LaTeX whose backslash escapes were eaten, inside math only."""

import pytest

from landscape.ingest.latex import repair


@pytest.mark.parametrize(
    ("broken", "fixed"),
    [
        ("$heta=1$", r"$\theta=1$"),
        ("$ heta$", r"$ \theta$"),
        ("$rac{1}{Re}$", r"$\frac{1}{Re}$"),
        ("$-u\nabla u$", r"$-u\nabla u$"),
        ("$$egin{aligned} a \\end{aligned}$$", r"$$\begin{aligned} a \end{aligned}$$"),
        (r"$rg\max_{ heta} p$", r"$\arg\max_{\theta} p$"),
        ("$m_ au$", r"$m_\tau$"),
        ("$rac{1}{\nho}$", r"$\frac{1}{\rho}$"),
        ("$Re, ho,f$", r"$Re, \rho,f$"),
        ("$m_{\nm WDM}$", r"$m_{\rm WDM}$"),
        ("$lpha$", r"$\alpha$"),
        ("$x pprox y$", r"$x \approx y$"),
        ("$\tilde{x}$", r"$\tilde{x}$"),
        ("$x\tau$", r"$x\tau$"),
        ("$a imes b$", r"$a \times b$"),
    ],
)
def test_each_eaten_escape_is_put_back(broken, fixed):
    assert repair(broken) == fixed


def test_prose_outside_math_is_left_alone():
    text = "The ho hum rac of heta waves"
    assert repair(text) == text
    assert repair("costs $5 or more, heta") == "costs $5 or more, heta"


def test_intact_latex_is_not_touched():
    text = r"$\theta + \frac{a}{b} + \nabla \rho + \tau + u + \nu + fraction$"
    assert repair(text) == text
