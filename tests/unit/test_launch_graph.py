"""config/graph.yaml semantics: modes, launch arguments, per-mode overrides, `when` conditions, error messages."""
import textwrap

import pytest

from mmchat_ros.core.launch_graph import GraphError, load_graph


def write(tmp_path, text, params=None):
    (tmp_path / "graph.yaml").write_text(textwrap.dedent(text))
    for name, body in (params or {}).items():
        (tmp_path / name).write_text(textwrap.dedent(body))
    return tmp_path / "graph.yaml"


GRAPH = """\
    modes: {sim: "s", hardware: "h"}
    launch_arguments:
      vehicle: {default: tello}
      airframe: {default: x500}
    nodes:
      fc:
        executable: flight_controller
        modes: [sim, hardware]
        parameters: [fc.yaml]
        inline_parameters: {airframe: $(arg airframe)}
        mode_overrides:
          hardware: {inline_parameters: {vehicle_interface: velocity}}
      tello:
        executable: tello_driver
        modes: [hardware]
        when: {vehicle: tello}
      mav:
        executable: mavlink_driver
        modes: [hardware]
        when: {vehicle: mavlink}
    """
PARAMS = {"fc.yaml": "fc:\n  ros__parameters:\n    rate: 250.0\n"}


def test_modes_arguments_overrides_and_when(tmp_path):
    graph = load_graph(write(tmp_path, GRAPH, PARAMS))
    sim = graph.resolve("sim")
    assert [s.name for s in sim] == ["fc"] and sim[0].parameters == {"airframe": "x500"}
    hardware = graph.resolve("hardware", {"airframe": "crazyflie"})
    assert [s.name for s in hardware] == ["fc", "tello"]
    assert hardware[0].parameters == {"airframe": "crazyflie", "vehicle_interface": "velocity"}
    assert [s.name for s in graph.resolve("hardware", {"vehicle": "mavlink"})] == ["fc", "mav"]
    args = hardware[0].ros_args()
    assert args[:3] == ["--ros-args", "-r", "__node:=fc"] and "airframe:=crazyflie" in args


@pytest.mark.parametrize("mutate,message", [
    (lambda g: g.replace("when: {vehicle: mavlink}", "when: {vehicel: mavlink}"), "unknown launch argument 'vehicel'"),
    (lambda g: g.replace("modes: [sim, hardware]", "modes: [sim, hardwar]"), "lists unknown mode 'hardwar'"),
    (lambda g: g.replace("executable: mavlink_driver", "exec: mavlink_driver"), "unknown key 'exec'"),
    (lambda g: g.replace("parameters: [fc.yaml]", "parameters: fc.yaml"), "must be a list"),
    (lambda g: g.replace("modes: {sim", "mode: {sim"), "unknown top-level key 'mode'"),
])
def test_errors_name_the_key(tmp_path, mutate, message):
    with pytest.raises(GraphError, match=message):
        load_graph(write(tmp_path, mutate(textwrap.dedent(GRAPH)), PARAMS))


def test_unknown_mode_and_argument(tmp_path):
    graph = load_graph(write(tmp_path, GRAPH, PARAMS))
    with pytest.raises(GraphError, match="unknown mode 'gazebo'; known modes: hardware, sim"):
        graph.resolve("gazebo")
    with pytest.raises(GraphError, match="unknown launch argument 'colour'"):
        graph.resolve("sim", {"colour": "red"})


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    with pytest.raises(GraphError, match=r"graph.yaml:\d+:\d+: YAML error: expected ','"):
        load_graph(write(tmp_path, "modes: {sim: s}\nnodes:\n  fc: [unclosed\n"))


def test_the_shipped_graph_is_valid():
    graph = load_graph()
    assert {"sim", "gazebo", "hardware"} <= set(graph.modes)
    assert "flight_controller" in [s.name for s in graph.resolve("sim")]


def test_parameter_files_named_by_a_launch_argument(tmp_path):
    text = textwrap.dedent(GRAPH).replace("parameters: [fc.yaml]", 'parameters: [fc.yaml, "hw_$(arg vehicle).yaml"]')
    graph = load_graph(write(tmp_path, text, {**PARAMS, "hw_tello.yaml": "fc:\n  ros__parameters: {a: 1}\n"}))
    assert [p.name for p in graph.resolve("sim")[0].parameter_files] == ["fc.yaml", "hw_tello.yaml"]
    with pytest.raises(GraphError, match="node 'fc'.*hw_mavlink.yaml: cannot read"):
        graph.resolve("sim", {"vehicle": "mavlink"})


SPLIT_GRAPH = """\
    modes: {sim: "s"}
    launch_arguments:
      part: {default: all}
    nodes:
      fc: {executable: flight_controller, modes: [sim], part: robot}
      panel: {executable: operator_panel, modes: [sim], part: ground}
    """


def test_part_starts_one_machine_s_share_of_the_graph(tmp_path):
    graph = load_graph(write(tmp_path, SPLIT_GRAPH))
    assert [s.name for s in graph.resolve("sim")] == ["fc", "panel"]
    assert [(s.name, s.part) for s in graph.resolve("sim", {"part": "robot"})] == [("fc", "robot")]
    assert [s.name for s in graph.resolve("sim", {"part": "ground"})] == ["panel"]
    assert [s.name for s in graph.resolve("sim", {"part": "all"})] == ["fc", "panel"]
    with pytest.raises(GraphError, match="part 'vehicle' is not one of robot, ground, all"):
        graph.resolve("sim", {"part": "vehicle"})


def test_part_errors(tmp_path):
    with pytest.raises(GraphError, match=r"graph.yaml:5: node 'fc': part 'air' is not one of robot, ground"):
        load_graph(write(tmp_path, SPLIT_GRAPH.replace("part: robot", "part: air")))
    graph = load_graph(write(tmp_path, SPLIT_GRAPH.replace(", part: ground", "")))
    with pytest.raises(GraphError, match="node 'panel' names no part"):
        graph.resolve("sim", {"part": "ground"})


def test_the_shipped_graph_splits_every_node_into_robot_or_ground():
    graph = load_graph()
    assert all(spec.get("part") in ("robot", "ground") for spec in graph.nodes.values())
    arguments = {"voice": "true"}
    robot = {s.name for s in graph.resolve("sim", {**arguments, "part": "robot"})}
    ground = {s.name for s in graph.resolve("sim", {**arguments, "part": "ground"})}
    assert robot == {"sim", "flight_controller", "camera", "image_compressor", "face_auth", "gesture", "teleop",
                     "tracker", "follow", "activation"}
    assert ground == {"planner", "operator_panel", "foxglove_bridge", "audio_input", "vad", "asr", "tts"}
    assert robot | ground == {s.name for s in graph.resolve("sim", arguments)}
    hardware = {s.name for s in graph.resolve("hardware", {"vehicle": "mavlink", "part": "robot"})}
    assert "mavlink_driver" in hardware and "operator_panel" not in hardware


def test_vehicle_name_puts_every_node_in_its_namespace(tmp_path):
    graph = load_graph(write(tmp_path, GRAPH.replace("      airframe: {default: x500}",
                                                     "      airframe: {default: x500}\n      vehicle_name: {default: ''}"),
                             PARAMS))
    plain = graph.resolve("sim")[0]
    assert plain.namespace == "" and "/clock" not in plain.remappings
    assert plain.parameter_files_applied() == plain.parameter_files and plain.parameters_applied() == plain.parameters
    fc = graph.resolve("sim", {"vehicle_name": "drone1"})[0]
    assert fc.namespace == "/drone1"
    args = fc.ros_args()
    assert args[:5] == ["--ros-args", "-r", "__node:=fc", "-r", "__ns:=/drone1"]
    # rcl would apply the file's 'fc:' section to /fc only: its values come as parameters, inline ones last
    assert "--params-file" not in args and fc.parameters_applied() == {"rate": 250.0, "airframe": "x500"}
    assert "rate:=250.0" in args
    assert fc.remappings["/clock"] == "clock"     # use_sim_time follows this vehicle's simulator
    with pytest.raises(GraphError, match="vehicle_name '2nd drone' is not a ROS name"):
        graph.resolve("sim", {"vehicle_name": "2nd drone"})


def test_the_shipped_graph_namespaces_a_simulated_vehicle_at_its_start_position():
    specs = {s.name: s for s in load_graph().resolve(
        "sim", {"part": "robot", "vehicle_name": "drone2", "start_position": "[3.0, 0.0, 0.0]"})}
    assert {s.namespace for s in specs.values()} == {"/drone2"}
    assert specs["sim"].parameters_applied()["start_position"] == [3.0, 0.0, 0.0]
    # the camera relays its own vehicle's simulator camera (a relative name), not /sim/camera of the root
    assert specs["camera"].parameters_applied()["input_topic"] == "sim/camera/image_raw"
