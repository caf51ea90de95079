"""The new-config wizard: one step per layer, each validated by the real config parser.

Pure parts (fields, rendering, validation) live here and in `steps/`; the widgets that show
a step are in `homelab.tui.widgets.step_form` and the screen in `homelab.tui.screens.wizard`.
"""
