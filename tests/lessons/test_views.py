"""The lessons' endpoints and actions refuse what they must before touching anything: anonymous
users, missing CSRF, unknown lessons and buttons, YAML for another object, images outside the
sample app's. (What the accepted ones do is covered in the browser tests.)"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from dashboard.actions import ActionError
from dashboard.lessons import actions as lesson_actions

pytestmark = pytest.mark.django_db


@pytest.fixture
def learner() -> Client:
    user, _ = get_user_model().objects.get_or_create(username="ada")
    web = Client()
    web.force_login(user)
    return web


def test_anonymous_requests_are_refused() -> None:
    for path in ("/lessons/start", "/lessons/answer", "/lessons/action", "/lessons/reset"):
        assert Client().post(path, {"lesson": "disposable"}).status_code == 403
    assert Client().get("/lessons/deployment.yaml").status_code == 403


def test_posts_need_the_csrf_token() -> None:
    user, _ = get_user_model().objects.get_or_create(username="ada")
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(user)
    assert strict.post("/lessons/start", {"lesson": "disposable"}).status_code == 403


def test_unknown_lessons_answers_and_buttons_are_400(learner: Client) -> None:
    assert learner.post("/lessons/start", {"lesson": "nope"}).status_code == 400
    answer = learner.post("/lessons/answer", {"lesson": "disposable", "choice": "7"})
    assert answer.status_code == 400 and "choose one" in answer.json()["error"]
    action = learner.post("/lessons/action", {"lesson": "disposable", "index": "9"})
    assert action.status_code == 400 and action.json()["error"] == "unknown action"
    assert learner.get("/lessons/start").status_code == 405


@pytest.mark.parametrize(
    ("text", "status", "words"),
    [
        ("{not yaml", 400, "not valid YAML"),
        ("apiVersion: v1\nkind: Service\nmetadata: {name: backend}\n", 400, "one apps/v1 Deployment"),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: other}\nspec: {}\n",
            403,
            "only the Deployment",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\n"
            "metadata: {name: backend, namespace: kube-system}\nspec: {}\n",
            403,
            "only namespace",
        ),
        (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: backend}\nspec: {replicas: 500}\n",
            400,
            "between 0 and",
        ),
        ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: backend}\n", 400, "needs a spec"),
    ],
)
def test_applied_yaml_must_be_the_backend_deployment(text: str, status: int, words: str) -> None:
    with pytest.raises(ActionError) as refused:
        lesson_actions.deployment_apply(text=text)
    assert refused.value.status == status and words in refused.value.message


def test_images_and_labels_are_the_sample_apps_only(settings: object) -> None:
    with pytest.raises(ActionError) as image:
        lesson_actions.deployment_image_set(image="evil/miner:latest")
    assert image.value.status == 400
    with pytest.raises(ActionError) as label:
        lesson_actions.pod_relabel(name="backend-x", value="frontend")
    assert label.value.status == 400
    settings.LBDEMO_IMAGE_LOAD_COMMAND = ""  # type: ignore[attr-defined]
    with pytest.raises(ActionError) as load:
        lesson_actions.image_load(image="lb-demo:v3")
    assert load.value.status == 501 and "minikube image load lb-demo:v3" in load.value.message
